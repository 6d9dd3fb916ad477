"""aiokafka's import paths for the group protocol (``aiokafka.coordinator``).

The implementation lives in :mod:`streamclient.consumer.assignors` and
:mod:`streamclient.consumer.group`; these modules only give it aiokafka's names, so code
written against aiokafka's documented paths imports unchanged.
"""
