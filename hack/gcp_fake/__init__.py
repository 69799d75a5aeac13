"""A local fake of the Google Cloud APIs the collection's GCP modules call (see README.md)."""
