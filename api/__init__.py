"""FastAPI: app factory, thin routers, schemas, error mapping. Nothing else imports api/."""
