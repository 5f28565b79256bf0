"""The Parquet dataset on a storage: commits (Dataset, write_dataset, compact), the writer, manifests and the sync
state they carry, data files and storage/ (local, s3). Internal: Dataset, write_dataset, compact are public."""
