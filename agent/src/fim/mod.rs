//! FIM adapters (being built): walking, hashing, baseline storage, watching, restore.
