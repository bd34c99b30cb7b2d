"""Where micado-client keeps its files, the cloud credentials and the master store."""
