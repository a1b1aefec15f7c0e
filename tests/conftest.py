pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.manager", "tests.fixtures.netns"]
