//! A throwaway Cerbos PDP for tests (filled in by the PEP work).
