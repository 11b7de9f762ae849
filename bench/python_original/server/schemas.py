"""Pydantic schemas in the FastAPI tutorial's style the original follows."""

from typing import Optional

from pydantic import BaseModel


class AccountBase(BaseModel):
    first_name: str
    last_name: str
    address: str


class AccountCreate(AccountBase):
    pass


class Account(AccountBase):
    id: int

    class Config:
        orm_mode = True


class TransactionBase(BaseModel):
    acc_id: int
    credit: Optional[int] = 0
    debit: Optional[int] = 0


class TransactionCreate(TransactionBase):
    pass


class Transaction(TransactionBase):
    id: int

    class Config:
        orm_mode = True
