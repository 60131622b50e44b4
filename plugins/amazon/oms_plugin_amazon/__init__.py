"""Amazon Selling Partner API channel plugin: pulls orders, pushes stock, confirms shipments."""
