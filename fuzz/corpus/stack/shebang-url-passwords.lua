#!/usr/bin/env halo
return { name = "shebang", url = "https://user:pa55word@example.test/x", deep = { { { "ftp://a:b@c" } } } }
