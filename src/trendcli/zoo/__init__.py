"""Zoo members: specs and ids, model composition, model files, training."""
