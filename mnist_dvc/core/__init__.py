"""The small pieces every stage shares: errors, params, atomic files, the cache, the console."""
