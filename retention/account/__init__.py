"""Account: the customer's own page, reached by a signed link, made of sections that retention
and the programs register, and the fresh links for those whose link expired.

    from retention.account import Section, register_section
"""

from retention.account.sections import Section, register_section

__all__ = ["Section", "register_section"]
