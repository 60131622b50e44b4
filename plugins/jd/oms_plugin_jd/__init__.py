"""JD channel plugin for oms-graphql (JD Open Service, JOS)."""
