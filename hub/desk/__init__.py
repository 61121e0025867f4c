"""The agent desk (``hub serve``): a JSON API and French pages over the published golden record,
each response cut to what the register of processing lets the signed-in agent's service see for the
purpose they state, each citizen read written to the access log. See docs/desk.md."""
