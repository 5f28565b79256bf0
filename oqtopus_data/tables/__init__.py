"""From result objects and device records to Arrow tables: the schema, the storable checks, flatten, devices and
calibrations. Internal."""
