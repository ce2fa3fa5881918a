"""
The usage page served inside Airflow's UI (Airflow 3.1+): what it reads (:mod:`.data`), how it looks
(:mod:`.page`) and the app that serves both to signed-in users only (:mod:`.app`). The plugin that registers
it is :mod:`airflow_provider_zendrive.plugins.zendrive`; nothing here is imported until the first request.
"""
