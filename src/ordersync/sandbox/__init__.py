"""What every sandbox shares: the document store, the app factory, fault injection and the runner."""
