"""The ground floor: errors, files, limits, safe YAML, statistics, the device and signals. Every
other wing may use it; it uses none of them."""
