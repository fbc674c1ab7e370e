"""The AUTOMATIC1111-compatible REST API under ``/sdapi/v1/``: a front door that translates into experiments."""
