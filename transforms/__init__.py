"""Pure functions of the pipeline: bytes -> text -> fact records. No I/O beyond reading seeds."""
