"""A throwaway app that plugs into every registry retention offers, as loyalty, surveys and
offers do: the tests install it for one test and check that each part shows up."""
