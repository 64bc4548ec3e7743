"""Data/model parallelism: the device mesh (`mesh`), state and batch shardings (`sharding`) and
the multi-host runtime (`distributed`)."""
