"""Loading: YAML text → plain data + source map, with limits; bundled specs by name."""
