//! Azure Resource Manager client for container groups, Azure identity and throttling.
