print("prefect-exporter-bench: being written")
