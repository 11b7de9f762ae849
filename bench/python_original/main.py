"""A faithful reference of the Python original (FastAPI, SQLAlchemy, Postgres, a Prometheus
middleware at /metrics), rebuilt from its report (../../../shared/seed/fastapi-monitoring-report.md
in this workplace): its models, its files, its routes and its one uvicorn worker on port 8888.
The benchmark runs it beside bank-api, on a database of its own, so the two are measured in the
same run. It is a reference to measure against, not part of bank-api."""

import os
from typing import List

import uvicorn
from fastapi import Depends, FastAPI, HTTPException
from prometheus_fastapi_instrumentator import Instrumentator
from sqlalchemy.orm import Session

from server import crud, models, schemas
from server.database import SessionLocal, engine

models.Base.metadata.create_all(bind=engine)

app = FastAPI()
Instrumentator().instrument(app).expose(app)


def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


@app.get("/ping")
def ping():
    return {"ping": "pong"}


@app.get("/500")
def fail():
    raise HTTPException(status_code=500, detail="Intentional error")


@app.post("/accounts/", response_model=schemas.Account)
def create_account(account: schemas.AccountCreate, db: Session = Depends(get_db)):
    return crud.create_account(db=db, account=account)


@app.get("/accounts/", response_model=List[schemas.Account])
def read_accounts(skip: int = 0, limit: int = 100, db: Session = Depends(get_db)):
    return crud.get_accounts(db, skip=skip, limit=limit)


@app.get("/accounts/{account_id}", response_model=schemas.Account)
def read_account(account_id: int, db: Session = Depends(get_db)):
    db_account = crud.get_account(db, account_id=account_id)
    if db_account is None:
        raise HTTPException(status_code=404, detail="Account not found")
    return db_account


@app.get("/accounts/{account_id}/transactions", response_model=List[schemas.Transaction])
def read_account_transactions(account_id: int, db: Session = Depends(get_db)):
    return crud.get_account_transactions(db, account_id=account_id)


@app.post("/transactions/", response_model=schemas.Transaction)
def create_transaction(transaction: schemas.TransactionCreate, db: Session = Depends(get_db)):
    return crud.create_transaction(db=db, transaction=transaction)


@app.get("/transactions/", response_model=List[schemas.Transaction])
def read_transactions(skip: int = 0, limit: int = 100, db: Session = Depends(get_db)):
    return crud.get_transactions(db, skip=skip, limit=limit)


if __name__ == "__main__":
    uvicorn.run(app, host=os.environ.get("HOST", "0.0.0.0"), port=int(os.environ.get("PORT", "8888")), workers=1)
