"""The HTTP edge: routes, the vote fast path, pages and assets, problems as HTTP answers. Routes
only translate between HTTP and the packages below; rules live there."""
