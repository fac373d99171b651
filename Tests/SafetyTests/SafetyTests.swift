// Safety tests land with each method.
