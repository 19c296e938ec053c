"""Few-shot classification (Finn et al. 2017, Sec. 5.2): an offline glyph set, Omniglot, MiniImageNet."""
