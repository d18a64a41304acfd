"""A helper process for the tests (``python -m tests.pool_child``): served by ``flows.child.serve`` like the
validator and the transform workers, it answers every job with the backend of its default Arrow memory pool."""

import pyarrow as pa

from flows.child import serve

if __name__ == "__main__":
    serve(lambda: None, lambda *job: pa.default_memory_pool().backend_name)
