"""A throwaway app that plugs into every registry retention offers, as the programs will:
the tests install it for one test and check that each part shows up where users see it."""
