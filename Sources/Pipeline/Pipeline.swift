// Pipeline module: a recipe's whole run.
