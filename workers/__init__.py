"""RQ jobs and the worker entry point. Jobs take ids, never ORM objects."""
