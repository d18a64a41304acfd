"""Prefect flows: they only orchestrate; every task calls one function of transforms/ or warehouse/."""
