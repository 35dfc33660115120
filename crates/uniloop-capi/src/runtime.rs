//! (issue 10, helper A)
