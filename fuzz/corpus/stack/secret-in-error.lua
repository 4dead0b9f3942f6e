-- A stack file that fails with a secret in its error message: the error
-- must come back redacted.
local token = secret("HALO_FUZZ_TOKEN", "tok-123456")
error("the token " .. token .. " was rejected by the stack file")
