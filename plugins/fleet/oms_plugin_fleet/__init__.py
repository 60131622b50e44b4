"""Own fleet (same-day delivery) as a carrier for oms-graphql."""
