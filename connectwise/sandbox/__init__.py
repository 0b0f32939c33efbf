"""The ConnectWise PSA sandbox: a standalone WSGI app that behaves like ConnectWise's REST API (PRODUCT.md).

Pure Python (no Django), served by ``python manage.py cw_sandbox`` or in-process through ``sandbox_transport``::

    from connectwise.sandbox import SandboxApp, load_scenario, sandbox_transport
    app = SandboxApp([load_scenario("connectwise/sandbox/scenarios/healthy.json")], client_ids=None)
    http = httpx.Client(transport=sandbox_transport(app), base_url="http://sandbox.test")

Modules: ``app`` (routing, auth, security, paging, writes, faults, control endpoints), ``conditions`` (the query
language), ``scenario`` (file format and validation), ``resources`` (paths, fields, rules, guarding functions),
``store`` (per-company state), ``server`` (threaded server with real connection resets), ``transport``,
``generate`` (large healthy tenants).

Behaviour worth knowing (each is documented where it is implemented):

- Security (PRODUCT.md): Companies > Company Maintenance guards ``company/companies*`` (statuses also need the
  Table Setup customize item "Company / Company Status"); Companies > Contacts ``company/contacts``; Finance >
  Agreements ``finance/*``; Procurement > Product Catalog ``procurement/catalog``; System > Table Setup the other
  ``procurement/*`` tables plus their Table Setup item ("Products / Category", "Products / Subcategories",
  "Product Type", "Product / UOM"). GET needs Inquire, POST Add, PUT/PATCH Edit, DELETE Delete; ``My`` is
  enough. Writes to an agreement also need its type in the role's Agreements customize items, and reads hide
  agreements of types that list lacks (lists, ``/count``, 404 by id: ``app.access_allowed_rows``, issue 17). ``system/*`` is
  readable by every authenticated member, except mySecurity when the company or role says
  ``"mySecurityReadable": false``; ``system/securityroles`` POST/DELETE need System > Security Roles Add/Delete.
- Uniqueness (400 ``ObjectExists``): ``identifier`` for companies and catalog items, ``name`` for statuses,
  agreement types, billing cycles, categories, product types and units of measure, (category, name) for
  subcategories, (company, name) for agreements (the last is the sandbox's choice, not confirmed).
- ``/_sandbox/requests`` counts ``"METHOD path"`` per company, path as sent without surrounding slashes and
  query, e.g. ``"PATCH procurement/catalog/12"``; unauthenticated calls count when the company is known.
  ``/_sandbox/reset`` restores records, roles and faults but keeps the request log.

Shipped scenarios (``scenarios/``) and their API members (``company+public`` / private):

=============  ===========  ====================================  ==========================================
file           company id   member: public key / private key      purpose
=============  ===========  ====================================  ==========================================
healthy.json   ``acme``     billingsync: ``acmepub`` /            every step passes; 12 companies, 16
                            ``acmepriv-0123456789``               agreements (Litware Inc is annual)
                            oldsync (inactive): ``acmeoldpub`` /
                            ``acmeoldpriv-0123456789``
broken.json    ``brokenco`` billingsync: ``brokenpub`` /          one instance of every finding ConnectWise
                            ``brokenpriv-0123456789``             data can cause (table below)
                            lockedsync: ``brokenlockedpub`` /
                            ``brokenlockedpriv-0123456789``
                            oldsync (inactive): ``brokenoldpub`` /
                            ``brokenoldpriv-0123456789``
bare.json      ``bareco``   billingsync: ``barepub`` /            nothing set up: every ``*_missing`` code,
                            ``barepriv-0123456789``               mySecurity unreadable
realworld.json ``realco``   billingsync: ``realpub`` /            what real partners' ConnectWise looks like
                            ``realpriv-0123456789``               (issue 17; table below); choices in
                                                                  ``realworld-customers.csv``
billing.json   ``billco``   billingsync: ``billpub`` /            healthy.json's setup, plus agreement
                            ``billpriv-0123456789``               additions: choose companies 1-6 monthly
=============  ===========  ====================================  ==========================================

billing.json's additions (``records["finance/agreements/additions"]``, served at
``finance/agreements/{id}/additions``): ``billing.existing_additions`` for 1 Contoso Ltd (addition 1, 25 x misc-seat
on agreement 1), 2 Fabrikam Inc (3, cancelled only in 2030) and 3 Northwind Traders (4);
``billing.addition_on_other_agreement`` for 4 Tailspin Toys (5, on its Azure Plan agreement 16 while its seats go
to the O365 agreement 4). Never flagged: 2 (a laptop on agreement 1), 6 (ended 2025-06-30), 7 (O365-E3, not a misc
product: the preview's SKU match finds it).

``generate_scenario(...)`` tenants use ``{company_id}pub`` / ``{company_id}priv-0123456789`` (``bigco``).

Which data triggers which finding code in broken.json and bare.json. Numbers are ``company/companies`` ids; a
company's first agreement has the company's id, a second one 100 + it. Motions are what the customers /
agreements pages choose:

=============================================  ===========  =================================================
code                                           scenario     data
=============================================  ===========  =================================================
connection.unknown_company                     any          company id ``nosuchco`` (companyinfo answers null)
connection.auth_failed                         broken       wrong private key, or member ``oldsync``
                                                            (``brokenoldpub``: inactive API member)
role.insufficient_level                        broken       Finance > Agreements Add None; Procurement >
                                                            Product Catalog Edit My (needs All)
role.missing_customize_item                    broken       Table Setup item "Product" missing (it guards no
                                                            sandbox path, so no read fails because of it)
role.excess_permission                         broken       Service Desk > Service Tickets Inquire All;
                                                            Companies > Company Maintenance Delete All
role.unreadable                                broken       member ``lockedsync`` (role "Locked Down" has
                                                            ``mySecurityReadable: false``); bare: the company
catalog.misc_inactive                          broken       product ``misc-seat`` (id 1) inactive;
                                                            ``MISC-LABOUR`` (id 4) active
catalog.misc_missing                           bare         no product identifier starts with "misc"
tables.category_inactive                       broken       category Miscellaneous (id 1) inactive
tables.subcategory_inactive                    broken       subcategory Miscellaneous (id 1) inactive
tables.product_type_inactive                   broken       product type Miscellaneous (id 1) inactive
tables.uom_inactive                            broken       unit of measure Each (id 1) inactive
tables.category_missing                        bare         no category Miscellaneous
tables.subcategory_missing                     bare         subcategory Miscellaneous (id 4) exists only
                                                            under Hardware, not under Miscellaneous
tables.product_type_missing                    bare         no product type Miscellaneous
tables.uom_missing                             bare         no unit of measure Each
customers.duplicate_name                       broken       1 "Contoso Ltd" and 2 "Contoso Limited"
customers.company_inactive                     broken       3 Fabrikam Inc (status Inactive); 4 Northwind
                                                            Traders (status Prospect)
customers.company_missing                      broken       5 Tailspin Toys (``deletedFlag`` true); or any id
                                                            that does not exist (e.g. 999)
customers.no_active_agreement                  broken       6 Wide World Importers (no agreement at all);
                                                            10 Woodgrove Bank, 11 Alpine Ski House
agreements.not_active                          broken       agreement 10 (Woodgrove Bank, Cancelled) or 11
                                                            (Alpine Ski House, Expired, endDate 2025-01-31)
                                                            chosen explicitly as the target
agreements.billing_cycle_not_monthly           broken       agreement 7 (Adventure Works, Quarterly)
agreements.invoicing_cycle_not_calendar_year   broken       agreement 8 (Litware Inc, ContractYear)
agreements.prorate_off                         broken       agreement 9 (Proseware LLC, prorateFlag false)
agreements.annual_not_one_time                 broken       12 Coho Winery, motion annual: agreement 12 type
                                                            Annual on billing cycle Monthly
agreements.type_not_allowed                    (none)       not reachable through the sandbox since issue 17:
                                                            it hides agreements of types the role lacks, as
                                                            ConnectWise does; broken's 13 Blue Yonder Airlines
                                                            ("Managed Services") now gives agreements.not_mapped
                                                            and role.missing_customize_item "Managed Services"
agreements.child_agreement                     broken       14 Trey Research, motion azure, agreement 114
                                                            chosen explicitly (it has parentAgreement 14;
                                                            the automatic choice skips child agreements)
agreements.multiple_active_same_type           broken       15 Margie's Travel: agreements 15 and 115, both
                                                            O365 and Active
agreements.ambiguous                           broken       15 Margie's Travel, motion monthly, no agreement
                                                            chosen (two candidates)
agreements.not_mapped                          broken       16 Lucerne Publishing, motion monthly: its only
                                                            agreement (16) is Annual
=============================================  ===========  =================================================

realworld.json (issue 17), with the motions of ``realworld-customers.csv``:

=============================================  =================================================================
code                                           data
=============================================  =================================================================
agreements.not_mapped +                        1 Contoso Ltd, motion azure: its Azure Plan agreement (101) is
role.missing_customize_item "Azure Plan"       hidden (the role's Access Allowed lacks Azure Plan); never
                                               auto-targeted to its O365 agreement
(no finding)                                   2 Fabrikam Inc: status "Active - Lead Tech Assigned", flagged active
agreements.not_started +                       3 Northwind Traders: ``startDate`` and ``billStartDate`` 2099-01-01;
customers.no_active_agreement                  4 Adventure Works: only ``billStartDate`` 2099-01-01
agreements.not_mapped (repairable: create      5 Litware Inc, motion annual, no agreement; no NotRecurring billing
with ``billOneTimeFlag``)                      cycle exists
agreements.billing_cycle_not_monthly           6 Proseware LLC: billing cycle "Monthly " (id 6) recurs Quarterly
agreements.not_active                          7 Woodgrove Bank, agreement 7 chosen: ``dateCancelled`` 2025-06-30
                                               with ``cancelledFlag`` false
customers.status_name_suspect (warning)        8 Trey Research: status "Prospect", flagged active
=============================================  =================================================================

Checked end to end with connectwise.checks.runner (all 16 broken companies chosen, 12 Coho Winery annual,
14 Trey Research azure with agreement 114, 10 and 11 with their agreements; member lockedsync; bare.json):
every code above comes out (the connection ones with those keys); healthy.json passes every step.

Not from ConnectWise data: ``connection.host_not_allowed``, ``connection.browser_host``,
``connection.unreachable`` (the site entered), ``customers.none_selected`` and ``customers.unmatched`` (the
partner's choices and CSV import).
"""

from __future__ import annotations

from .app import SandboxApp, SandboxReset
from .scenario import Scenario, ScenarioError, load_scenario, parse_scenario
from .server import make_server, serve_in_thread
from .transport import sandbox_transport


def generate_scenario(*args, **kwargs):
    """``generate.generate_scenario``, imported on use so ``python -m connectwise.sandbox.generate`` runs cleanly."""
    from .generate import generate_scenario as generate  # noqa: PLC0415 (python -m connectwise.sandbox.generate)

    return generate(*args, **kwargs)


__all__ = [
    "SandboxApp",
    "SandboxReset",
    "Scenario",
    "ScenarioError",
    "generate_scenario",
    "load_scenario",
    "make_server",
    "parse_scenario",
    "sandbox_transport",
    "serve_in_thread",
]
