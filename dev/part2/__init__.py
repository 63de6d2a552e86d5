"""OGC API - Processes Part 2 (Deploy, Replace, Undeploy) for the dev stack: wraptile + cwltool.

* :mod:`dev.part2.server` - start the server (stdlib only; importable from any virtualenv);
* :mod:`dev.part2.service` - the wraptile ``DruService`` (runs in ``.venv-wraptile``);
* :mod:`dev.part2.cwl` - CWL package parsing, process descriptions, job orders (PyYAML only);
* :mod:`dev.part2.steps` - the local commands of ``packages/water-bodies.cwl``.
"""
