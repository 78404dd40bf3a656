-- rspamd.local.lua - the end-to-end tests' own rule, added to the
-- project's rspamd configuration by tests/e2e/lib.sh gw_rspamd_test_conf
-- (never part of gateway/rspamd, which `make run` uses too).
--
-- ARCHIVED_TEST_SCORE: a message with "X-Archived-Test-Score: N" (N a
-- number) gets the symbol with the score N (score 1 times the dynamic
-- weight N), so that a test can put a message in any band of the
-- gateway's policy (tag, quarantine, reject) with the real rspamd; the
-- rest of its score comes from rspamd's own rules as usual.
rspamd_config.ARCHIVED_TEST_SCORE = {
  callback = function(task)
    local h = task:get_header('X-Archived-Test-Score')
    local n = h and tonumber(h)
    if not n then
      return false
    end
    return true, n, h
  end,
  score = 1.0,
  description = 'archived tests: the score the message asks for',
  group = 'archived_tests',
}
