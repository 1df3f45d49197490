"""
Embedding twisted-mail-stack beside your own service.

Run with:  twistd -ny examples/embedding.tac
It starts a small web page on 127.0.0.1:8080 that shows the mail users, next to a mail server
keeping its data in ./embedded-mail-data.
"""

from twisted.application import internet
from twisted.application.service import Application
from twisted.web import resource, server

from twisted_mail_stack.config import load_config
from twisted_mail_stack.service import MailStack

mail = MailStack(load_config(overrides={"data_dir": "./embedded-mail-data"}))


class Users(resource.Resource):
    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        users = mail.userdb.users() if mail.userdb is not None else []
        return ("mail users:\n" + "\n".join(users) + "\n").encode()


application = Application("embedding-example")
mail.setServiceParent(application)
internet.TCPServer(8080, server.Site(Users()), interface="127.0.0.1").setServiceParent(application)
