"""flatland.theory: symbolic Hessians, implicit regularizers and predicted drift (SymPy)."""
