"""Nomad's ACLs on the server side: the policy rule language (``policy``), compiled ACL objects
(``acl``), the token resolver with its cache (``resolver``) and the ``ACL.*`` endpoint."""
