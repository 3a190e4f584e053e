"""Value: the predicted-value models (BG/NBD and Gamma-Gamma) fitted on the orders, every
customer's stored prediction, the customers at risk and the back-test of that list, what the
value and at-risk pages count, and the follow-ups and re-engagement lists that act on them."""
