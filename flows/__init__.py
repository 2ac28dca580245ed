"""Prefect flows of the pipeline: the only package that imports prefect."""
from commentary.settings import apply_environment_defaults

apply_environment_defaults()
