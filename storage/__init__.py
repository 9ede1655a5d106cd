"""Everything durable: per-repo object stores, packs, refs, KV and blob stores."""
