//! (issue 10, helper B)
