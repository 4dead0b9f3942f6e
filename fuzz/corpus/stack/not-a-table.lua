return "stack"
