"""Scale-out engines over cluster frameworks (Ray Data). Importing this package imports nothing heavy;
`docunet.scale.ray_engine` is the only module that imports `ray` (the `[ray]` extra)."""
