return { harness = { up = {}, down = { "docker", 42, "down" } } }
