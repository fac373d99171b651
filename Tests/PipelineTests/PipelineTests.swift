// Pipeline tests land with the runner.
