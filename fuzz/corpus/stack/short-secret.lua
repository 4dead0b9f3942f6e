return { pw = secret("HALO_FUZZ_PW", "abc") }
