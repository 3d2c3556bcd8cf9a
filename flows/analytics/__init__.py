"""Run-history analytics on Prefect: harvest Trinity's runs, report on them three ways.

:mod:`~flows.analytics.harvest` copies runs from Prefect into Trinity's tables,
:mod:`~flows.analytics.history` reads windows of them back as the frames of :mod:`analytics`,
:mod:`~flows.analytics.reports` builds reports (incrementally for performance),
:mod:`~flows.analytics.outputs` writes the LOGS tree, the API's rows and Prefect artifacts,
:mod:`~flows.analytics.models` reads and stores what the reports learn, and
:mod:`~flows.analytics.alerts` emits their alerts as Prefect events.
:mod:`~flows.analytics.flows` holds the scheduled flows.
"""
