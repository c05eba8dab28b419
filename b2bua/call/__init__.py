"""Sans-I/O call logic: legs, calls, the call table and the call-control flows."""
